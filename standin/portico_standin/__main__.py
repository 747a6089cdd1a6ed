from portico_standin.cli import main

main()
