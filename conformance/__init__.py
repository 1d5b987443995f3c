"""Conformance harness for chatter (irctest controller and runner); see docs/CONFORMANCE.md."""
