"""Outbound WeChat: the API client (one shared stable token), push texts, and identity linking."""
