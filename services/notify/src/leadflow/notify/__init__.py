"""notify: outbound delivery (e-mail to reps and managers, nurture e-mail, webhooks)."""
