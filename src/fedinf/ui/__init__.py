"""The admin web UI (``/ui``): static pages calling the admin API, with cookie sessions (:mod:`fedinf.ui.session`)."""
