from hitl_review_api.app import main

main()
