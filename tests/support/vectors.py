"""The worked vectors of wechat-protocol.md §3.5 (A: the official Mini Program example; C: the
self-generated OA XML vector, cross-checked with wechatpy 1.8.18)."""

from __future__ import annotations

# --- Vector A: the official Mini Program message-push example --------------------------------
A_TOKEN = "AAAAA"
A_AES_KEY = "A" * 43
A_APPID = "wxba5fad812f8e6fb9"
A_ENCRYPT = (
    "+qdx1OKCy+5JPCBFWw70tm0fJGb2Jmeia4FCB7kao+/Q5c/ohsOzQHi8khUOb05JCpj0JB4RvQMkUyus8TPxLKJGQqcv"
    "ZqzDpVzazhZv6JsXUnnR8XGT740XgXZUXQ7vJVnAG+tE8NUd4yFyjPy7GgiaviNrlCTj+l5kdfMuFUPpRSrfMZuMcp3Fn2"
    "Pede2IuQrKEYwKSqFIZoNqJ4M8EajAsjLY2km32IIjdf8YL/P50F7mStwntrA2cPDrM1kb6mOcfBgRtWygb3VIYnSeOBreb"
    "ufAlr7F9mFUPAJGj04="
)
A_MESSAGE = (
    '{"ToUserName":"gh_97417a04a28d","FromUserName":"o9AgO5Kd5ggOC-bXrbNODIiE3bGY",'
    '"CreateTime":1714112445,"MsgType":"event","Event":"debug_demo","debug_str":"hello world"}'
)
A_REPLY_ENCRYPT = (
    "ELGduP2YcVatjqIS+eZbp80MNLoAUWvzzyJxgGzxZO/5sAvd070Bs6qrLARC9nVHm48Y4hyRbtzve1L32tmxSQ=="
)

# --- Vector C: self-generated OA XML (cross-checked with wechatpy 1.8.18) ----------------------
C_TOKEN = "testtoken"
C_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
C_APPID = "wx0000000000000001"
C_MESSAGE = (
    "<xml><ToUserName><![CDATA[gh_000000000001]]></ToUserName><FromUserName><![CDATA["
    "oUSER0000000000000000000001]]></FromUserName><CreateTime>1700000000</CreateTime><MsgType>"
    "<![CDATA[text]]></MsgType><Content><![CDATA[points]]></Content><MsgId>24000000000000001</MsgId></xml>"
)
C_ENCRYPT = (
    "Q3stYC6hdFzMh9T8HCvyDEyyIo7SrfCU7qIY00FhmKzxLhwDU4yRHtC29SoooV3t4MawbQaNgIjy2pXmu2ZnU7ODqZq63Ggw"
    "BnamHaK3vepi5Mcfl4XUK4YqvxeMvCxBiJSjK9vR4EBvoheKpbg8BLZ42wRM7mzPJhcf74gYXaKrYMGzD8W3CAzot2f5pC/Z6l"
    "wz8+MhNbNy7S5SylQnqQzX3JaOw8IX6SrzXdOxeBwrJCcZlPJyaB2xduc9gdQQfgEYuG4VcyrQrTaBlrd7OFkyT0JIo/ybLa"
    "2J/nFlLnfPxFfDe1n8zLAhm9YO/C8NvjCrBg/qMFFbDPGJRlnJcQ7l8vhxXJnzi5ahohBAKj/t1BfdgQ8cty//KXGx/IvGKb"
    "mKS5bD1yzpcr9OP9HXMJZcSfg1R7jyN23Qwmo99eU="
)
