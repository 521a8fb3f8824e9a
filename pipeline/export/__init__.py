"""Deployable tickets: physically slimmer networks and TFLite files of a ticket."""
