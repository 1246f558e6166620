"""What a Python team builds instead of a broker (issue 18's comparison): a FastAPI
endpoint that stores the message in PostgreSQL through SQLAlchemy and hands its
delivery to Celery over RabbitMQ; a Celery worker POSTs it to each listener.

Built the way each project's documentation shows, with the settings a careful team
would pick for webhooks it must not lose, and no more:

* the endpoint is a plain ``def`` (FastAPI runs it in its thread pool: the documented
  way for blocking libraries), the body a pydantic model, the API key compared in
  constant time, one SQLAlchemy session and transaction per request (psycopg 3,
  SQLAlchemy's default pool), ``deliver.delay()`` once the row is committed;
* Celery acknowledges a task after it ran (``task_acks_late``) and gives it back if
  its worker dies (``task_reject_on_worker_lost``): at-least-once, like tidings; its
  messages are persistent on a durable queue (Celery's defaults);
* the task reads the message's pending deliveries with their listeners, POSTs each
  with ``requests`` (a session per worker process, keep-alive, a timeout) and records
  the outcome; a failure is retried with Celery's backoff.

Served by ``uvicorn bench.pipeline_app:app`` (uvloop and httptools, one worker, as
``fastapi run`` starts it) and ``celery -A bench.pipeline_app:celery worker`` (prefork, one
process per core). Configured from the environment: ``PIPELINE_DB`` (a SQLAlchemy
URL), ``PIPELINE_QUEUE`` (the Celery queue), ``PIPELINE_BROKER`` and ``PIPELINE_KEY``.
``python -m bench.pipeline_app prepare QUEUE_ID RECEIVER_URL`` makes the tables and
that queue with one listener; ``... drop-queue`` deletes the Celery queue.
"""

from __future__ import annotations

import hmac
import os
import sys
import time
import uuid
from typing import Any

import requests
from celery import Celery
from fastapi import FastAPI, Header, HTTPException
from pydantic import BaseModel
from sqlalchemy import BigInteger, ForeignKey, Integer, String, Text, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

DB_URL = os.environ.get("PIPELINE_DB", "postgresql+psycopg://postgres@127.0.0.1/test")
BROKER = os.environ.get("PIPELINE_BROKER", "amqp://guest:guest@127.0.0.1:5672//")
QUEUE = os.environ.get("PIPELINE_QUEUE", "deliveries")
KEY = os.environ.get("PIPELINE_KEY", "pipeline-key")
TIMEOUT_S = 10.0


class Base(DeclarativeBase):
    pass


class Queue(Base):
    __tablename__ = "queues"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(256))


class Listener(Base):
    __tablename__ = "listeners"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    queue_id: Mapped[str] = mapped_column(ForeignKey("queues.id"), index=True)
    notify_url: Mapped[str] = mapped_column(Text)


class Message(Base):
    __tablename__ = "messages"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    queue_id: Mapped[str] = mapped_column(ForeignKey("queues.id"), index=True)
    name: Mapped[str | None] = mapped_column(String(256))
    data: Mapped[str] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger)


class Delivery(Base):
    __tablename__ = "deliveries"
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id"), primary_key=True)
    listener_id: Mapped[str] = mapped_column(ForeignKey("listeners.id"), primary_key=True)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_status: Mapped[int | None] = mapped_column(Integer)


engine = create_engine(DB_URL)
celery = Celery("pipeline", broker=BROKER)
celery.conf.update(
    task_default_queue=QUEUE,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    task_serializer="json",
    worker_hijack_root_logger=False,
)
app = FastAPI()


class NewMessage(BaseModel):
    name: str | None = None
    data: str


@app.post("/v1/queues/{queue_id}/messages")
def create_message(queue_id: str, body: NewMessage, x_api_key: str = Header()) -> dict[str, Any]:
    if not hmac.compare_digest(x_api_key.encode(), KEY.encode()):
        raise HTTPException(401, "Unknown API key.")
    message_id = uuid.uuid4().hex
    with Session(engine) as session, session.begin():
        if session.get(Queue, queue_id) is None:
            raise HTTPException(404, "No queue with this id.")
        session.add(
            Message(
                id=message_id,
                queue_id=queue_id,
                name=body.name,
                data=body.data,
                created_at=int(time.time() * 1000),
            )
        )
        session.flush()  # the message row before its deliveries (foreign keys)
        listeners = session.scalars(select(Listener.id).where(Listener.queue_id == queue_id))
        session.add_all(Delivery(message_id=message_id, listener_id=lid) for lid in listeners)
    deliver.delay(message_id)
    return {"message": {"id": message_id, "name": body.name}}


_http: requests.Session | None = None


def _client() -> requests.Session:
    global _http
    if _http is None:  # one per worker process, after the fork
        _http = requests.Session()
    return _http


@celery.task(bind=True, max_retries=None)  # type: ignore[untyped-decorator]
def deliver(self: Any, message_id: str) -> None:
    with Session(engine) as session, session.begin():
        rows = session.execute(
            select(Delivery, Listener.notify_url, Message, Queue.name)
            .join(Listener, Listener.id == Delivery.listener_id)
            .join(Message, Message.id == Delivery.message_id)
            .join(Queue, Queue.id == Message.queue_id)
            .where(Delivery.message_id == message_id, Delivery.state == "pending")
        ).all()
        failed = 0
        for delivery, url, message, queue_name in rows:
            payload = {
                "id": message.id,
                "name": message.name,
                "queue": {"id": message.queue_id, "name": queue_name},
                "data": message.data,
                "created_at": message.created_at,
            }
            delivery.attempts += 1
            try:
                status = _client().post(url, json=payload, timeout=TIMEOUT_S).status_code
            except requests.RequestException:
                status = None
            delivery.last_status = status
            if status is not None and 200 <= status < 300:
                delivery.state = "delivered"
            else:
                failed += 1
    if failed:
        raise self.retry(countdown=min(2 ** min(self.request.retries, 10), 600))


def prepare(queue_id: str, receiver_url: str) -> None:
    Base.metadata.create_all(engine)
    with Session(engine) as session, session.begin():
        session.add(Queue(id=queue_id, name="bench"))
        session.flush()
        session.add(Listener(id="l1", queue_id=queue_id, notify_url=receiver_url))


def drop_queue() -> None:
    with celery.connection_for_write() as conn:
        conn.default_channel.queue_delete(QUEUE)


if __name__ == "__main__":
    if sys.argv[1] == "prepare":
        prepare(sys.argv[2], sys.argv[3])
    else:
        drop_queue()
