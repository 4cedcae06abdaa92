"""Business logic as plain functions: services write, selectors read. Views, tasks and commands
call these and nothing else touches the models' rules directly."""
