"""The 3x3x3 magic cube, verified and drawn for MathJax (work in progress: see the project's issues)."""
