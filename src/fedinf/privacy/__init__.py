"""On-prem data governance: detect sensitive entities, classify requests, pseudonymize and restore.

Public API::

    clf = Classifier.from_config(config.governance)
    c = clf.classify(texts)                     # Classification: data_class, entities (types/spans), summary()
    c = apply_declared(c, declared, may_lower=...)
    p = Pseudonymizer(clf); safe = p.pseudonymize(texts, c.entities); answer = p.restore(reply)
    r = p.stream(); r.feed(delta) ...; r.flush()
"""

from fedinf.privacy.classifier import Classification, Classifier, Entity, apply_declared
from fedinf.privacy.classes import DEFAULT_ENTITY_CLASSES
from fedinf.privacy.pseudonym import Pseudonymizer, StreamRestorer

__all__ = [
    "DEFAULT_ENTITY_CLASSES",
    "Classification",
    "Classifier",
    "Entity",
    "Pseudonymizer",
    "StreamRestorer",
    "apply_declared",
]
