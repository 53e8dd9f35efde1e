"""The web chat simulator (/simulator): a WeChat conversation in the browser, over the real webhook."""
