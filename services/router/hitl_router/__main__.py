from hitl_router.app import main

main()
