"""The tests' SMS provider is the demo's: a real HTTP server speaking `libs/sms.py`'s API,
keeping what it receives (`server.inbox.wait_for(number)`), told to fail at will."""

from scripts.sms_sink import Attempt, Sms, SmsInbox, SmsServer

__all__ = ["Attempt", "Sms", "SmsInbox", "SmsServer"]
