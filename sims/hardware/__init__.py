"""The hardware model: core mapper, cost and timing, NeuroBench metrics, uncertainty, reports and plots."""
