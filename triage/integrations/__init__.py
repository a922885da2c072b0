"""Integrations with the tools around triage: support desks that send tickets in, and trackers
and chat that issues go out to. Each vendor is one module that maps its payloads to our models;
the HTTP routes live in ``api/routes/``."""
