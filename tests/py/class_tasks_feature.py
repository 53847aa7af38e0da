"""Imported by a worker to make ``NeedsFeature.analyze_worker`` report the feature."""

import class_tasks

class_tasks.FEATURE_ENABLED = True
