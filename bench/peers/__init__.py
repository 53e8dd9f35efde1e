"""The peers bench/compare.py measures wxbot beside: a FastAPI + wechatpy echo (in the product's venv) and
WeRoBot under gunicorn (in a venv of its own, never a dependency of the product)."""
