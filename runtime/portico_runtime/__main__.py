from portico_runtime.cli import main

main()
