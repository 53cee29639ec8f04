# Asks real Flipper (Debian ruby-flipper, ActiveRecord adapter) whether a feature is enabled for
# each actor, reading Flipper's tables in the database at URL; prints one JSON object.
#   ruby flipper_check.rb URL FEATURE ACTOR [ACTOR...]
require "json"
require "active_record"
require "flipper"
require "flipper/adapters/active_record"

url, feature, *actors = ARGV
ActiveRecord::Base.establish_connection(url)
Flipper.configure { |config| config.adapter { Flipper::Adapters::ActiveRecord.new } }
answers = actors.to_h { |actor| [actor, Flipper.enabled?(feature.to_sym, Flipper::Actor.new(actor))] }
puts JSON.dump(answers)
