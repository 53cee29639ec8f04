require "json"
require "rack"
require "controllers/checkout_controller"
require "controllers/orders_controller"
require "shop/flags"

module Shop
  # Routes a request to a controller action; the signed-in user comes from the
  # X-Shop-Impersonate header (staging only) or the `_shop_session` cookie ("user_id=42").
  # Every answer says which process served it (X-Shop-Pid), so a test can tell a debug replica
  # from the app behind the same load balancer.
  class Router
    def call(env)
      status, headers, body = route(env)
      [status, headers.merge("x-shop-pid" => Process.pid.to_s), body]
    end

    private

    def route(env)
      request = Rack::Request.new(env)
      user_id = current_user_id(request)
      Flags.debug(request, user_id)
      case [request.request_method, request.path_info]
      when ["GET", "/health"] then [200, { "content-type" => "text/plain" }, ["ok\n"]]
      when ["POST", "/checkout"] then CheckoutController.new(request, user_id).create
      when ["GET", "/orders"] then OrdersController.new(request, user_id).index
      else [404, { "content-type" => "application/json" }, [JSON.dump(error: "not found")]]
      end
    rescue StandardError => e
      body = JSON.dump(error: e.class.name, message: e.message, backtrace: e.backtrace.first(5))
      [500, { "content-type" => "application/json" }, [body]]
    end

    def current_user_id(request)
      header = request.get_header("HTTP_X_SHOP_IMPERSONATE")
      return Integer(header) if header && !header.empty?

      session = request.cookies["_shop_session"].to_s[/\Auser_id=(\d+)\z/, 1]
      session && Integer(session)
    end
  end
end
