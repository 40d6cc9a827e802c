"""RabbitMQ adapters. Only modules in this package import aio-pika."""
