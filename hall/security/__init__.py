"""Security primitives: password hashing, keyed PII hashing, log masking, rate limits."""
