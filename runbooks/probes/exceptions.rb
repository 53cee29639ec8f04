# Probe: record every exception raised in the process (class, message, the method raising it)
# to probe.log beside this file, so the trace shows what failed where. Installs a TracePoint;
# exceptions.undo.rb disables it. Loading it twice keeps one TracePoint.
module LadderProbes
  module Raises
    LOG = File.join(__dir__, "probe.log")
    LIMIT = 1000
    LOCK = Mutex.new

    def self.install
      return true if @tracepoint&.enabled?

      @written = 0
      @tracepoint = TracePoint.new(:raise) do |tp|
        record(tp.raised_exception, tp.defined_class, tp.method_id, tp.path, tp.lineno)
      end
      @tracepoint.enable
      true
    end

    def self.uninstall
      @tracepoint&.disable
      @tracepoint = nil
      true
    end

    def self.record(error, owner, method_id, path, lineno)
      LOCK.synchronize do
        return if @written >= LIMIT

        @written += 1
        where = owner ? "#{owner.inspect.sub(/\A#<Class:(.*)>\z/, '\1.')}#{'#' unless owner.singleton_class?}#{method_id}" : "(top)"
        message = error.message.to_s.lines.first.to_s.strip
        File.open(LOG, "a") { |f| f.puts("RAISED #{error.class.name}: #{message} IN #{where} AT #{path}:#{lineno}") }
      end
    rescue StandardError
      nil
    end
  end
end

LadderProbes::Raises.install
