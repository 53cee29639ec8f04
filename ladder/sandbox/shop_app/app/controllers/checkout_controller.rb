require "services/checkout_service"

module Shop
  class CheckoutController
    def initialize(request, user_id)
      @request = request
      @user_id = user_id
    end

    def create
      return [401, { "content-type" => "application/json" }, ['{"error":"sign in"}']] unless @user_id

      receipt = CheckoutService.new(@user_id).call
      [201, { "content-type" => "application/json" }, [JSON.dump(receipt)]]
    end
  end
end
