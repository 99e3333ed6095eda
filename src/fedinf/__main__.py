from fedinf.cli import main

main()
