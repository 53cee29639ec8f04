require "monitor"
require "time"

module Shop
  # Feature flags from Flipper's ActiveRecord tables in SHOP_FLIPPER_DATABASE_URL (the sandbox's
  # production database), when Flipper is installed (Debian ruby-flipper). Without either, every
  # flag is off. `debug_mode` for a user makes the app write a debug line for that user's requests,
  # to SHOP_DEBUG_LOG (the sandbox's Rails log) or else to its own output.
  module Flags
    LOCK = Monitor.new

    def self.enabled?(feature, user_id)
      return false unless user_id && ready?

      ActiveRecord::Base.connection_pool.with_connection do
        Flipper.enabled?(feature, Flipper::Actor.new("User;#{user_id}"))
      end
    rescue StandardError => e # a flag store that fails leaves the flag off, never the request
      warn "flags: #{e.class}: #{e.message}"
      false
    end

    def self.debug(request, user_id)
      return unless enabled?(:debug_mode, user_id)

      line = "[debug_mode] user_id=#{user_id} #{request.request_method} #{request.path_info} " \
             "params=#{request.params.keys.sort.join(',')} at #{Time.now.utc.iso8601(3)}"
      log = ENV["SHOP_DEBUG_LOG"]
      if log && !log.empty?
        File.open(log, "a") { |file| file.puts(line) } # one write per line, appended
      else
        $stdout.puts line
        $stdout.flush
      end
    end

    def self.ready?
      LOCK.synchronize do
        return @ready unless @ready.nil?

        @ready = connect(ENV["SHOP_FLIPPER_DATABASE_URL"])
      end
    end

    def self.connect(url)
      return false if url.nil? || url.empty?

      require "active_record"
      require "flipper"
      require "flipper/adapters/active_record"
      ActiveRecord::Base.establish_connection(url)
      Flipper.configure { |config| config.adapter { Flipper::Adapters::ActiveRecord.new } }
      true
    rescue LoadError
      false
    end
  end
end
