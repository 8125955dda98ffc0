"""Training machinery shared by teachers and students: batching, the epoch loop, metrics."""
