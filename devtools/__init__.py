"""Development tools, not the product: the fake WeChat API, the simulated WeChat side and the terminal
chat. A plain `pip install .` (and the Docker image) leaves this package out; a development install
(`make install`) puts the checkout on the path, so `wxbot chat` and `wxbot fake-wechat` work there."""
