"""The deployable entry point: ``app`` for Vercel and uvicorn, ``handler`` for AWS Lambda."""

from mangum import Mangum

from api.factory import create_app

app = create_app()
# Mangum runs the lifespan on every invocation; Herald does nothing there (its clients are lazy).
handler = Mangum(app, lifespan="off")
