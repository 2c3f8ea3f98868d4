from decone.cli import main

main()
