# The sandbox shop: a small Rack app standing in for the Rails app on staging.
# Started by Puma with RUBYOPT=-rrbtrace (see ladder/sandbox/shop.py and tests/servers/puma.py);
# reads the database in SHOP_DATABASE_URL. POST /checkout has the incident's bug: an order marked
# 'paid' without a payment row raises NoMethodError in Payment#capture!.
$LOAD_PATH.unshift(File.join(__dir__, "lib"), File.join(__dir__, "app"))
require "shop/db"
require "shop/router"

run Shop::Router.new
