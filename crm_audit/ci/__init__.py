"""What CI jobs use: gates, baseline, waivers, signing."""
