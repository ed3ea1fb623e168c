"""A tiny customer-support bot behind HITL-Ops, answering with canned "model" outputs.

Billing and refund answers are *sequential*: the bot waits for the release and shows
what a human approved, edited or replaced. Shipping answers are *parallel*: the bot
shows them at once and applies a correction if a reviewer later retracts one.
"""
