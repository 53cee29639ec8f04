require "models/order"
require "models/payment"

module Shop
  # Captures the payment of the customer's latest order.
  class CheckoutService
    def initialize(user_id)
      @user_id = user_id
    end

    def call
      order = Order.latest_for(@user_id)
      raise ArgumentError, "no order to check out" unless order

      amount = Payment.new(order).capture!
      { order_id: order.id, captured_cents: amount }
    end
  end
end
