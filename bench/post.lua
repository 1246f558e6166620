-- wrk -s bench/post.lua: POST a ~100-byte message; QUEUE_PATH and API_KEY from the env.
wrk.method = "POST"
wrk.path = os.getenv("QUEUE_PATH")
wrk.body = '{"name": "order-1", "data": "{\\"id\\": 1, \\"sku\\": \\"ABC-123\\", \\"qty\\": 2, \\"note\\": \\"ok\\"}"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-KEY"] = os.getenv("API_KEY")
