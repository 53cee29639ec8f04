# Undo of exceptions.rb: disable its TracePoint. Safe to run twice, or when it never ran.
LadderProbes::Raises.uninstall if defined?(LadderProbes::Raises)
true
