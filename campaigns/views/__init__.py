"""Campaign pages: `wizard` (list, new, draft steps), `detail` (live page), `actions`."""
