from speedbench.cli import main

main()
