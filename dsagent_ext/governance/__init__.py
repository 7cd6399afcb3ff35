"""What the admin governs: the policy (models, human oversight), spending limits, the model catalogue."""
