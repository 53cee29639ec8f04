require "shop/db"

module Shop
  # A payment of an order. The bug: an order marked 'paid' without a payment row finds no record,
  # and capture! calls amount_cents on nil (NoMethodError).
  class Payment
    Record = Struct.new(:id, :amount_cents, :status)

    def initialize(order)
      @order = order
    end

    def capture!
      record = find_record
      if @order.status == "pending"
        return 0
      end

      record.amount_cents
    end

    private

    def find_record
      row = DB.query(
        "SELECT id, amount_cents, status FROM payments WHERE order_id = $1 LIMIT 1", [@order.id]
      ).first
      row && Record.new(Integer(row["id"]), Integer(row["amount_cents"]), row["status"])
    end
  end
end
