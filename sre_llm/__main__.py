from sre_llm.cli import main

main()
