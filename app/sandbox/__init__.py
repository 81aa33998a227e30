"""A faithful local emulator of Frame.io V4, Adobe IMS, S3 part URLs and Discord webhooks.

Tests and ``--sandbox`` demo mode run against it over real HTTP on 127.0.0.1. It follows the
documented API (shared/frameio-v4-openapi.json, BRIEF §3–4), not what PostFlow happens to send.
"""
