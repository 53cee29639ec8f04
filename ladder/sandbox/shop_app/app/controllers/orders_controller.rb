require "models/order"

module Shop
  class OrdersController
    def initialize(request, user_id)
      @request = request
      @user_id = user_id
    end

    def index
      return [401, { "content-type" => "application/json" }, ['{"error":"sign in"}']] unless @user_id

      orders = Order.for_user(@user_id).map { |o| { id: o.id, status: o.status } }
      [200, { "content-type" => "application/json" }, [JSON.dump(orders)]]
    end
  end
end
