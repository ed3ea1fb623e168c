from hitl_prescreen.app import main

main()
