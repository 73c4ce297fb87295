"""asyncio services (no Qt): the job queue, output storage, the prompt history."""
