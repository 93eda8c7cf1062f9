"""The course around the stages: handing the notebooks out to a class and grading them (`classroom`)."""
