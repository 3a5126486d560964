"""What people read: plans rendered as text, Markdown or JSON, status, drift, environment diffs, specs written
from live state, and side-by-side comparisons. Reports read; they never write to Qdrant or state."""
