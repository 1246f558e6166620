-- wrk -s bench/get.lua: GET one queue (a read through auth, routing and the store).
wrk.method = "GET"
wrk.path = os.getenv("QUEUE_PATH")
wrk.headers["X-API-KEY"] = os.getenv("API_KEY")
