from hitl_feedback.app import main

main()
