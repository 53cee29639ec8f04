# Undo of checkout.rb: remove the prepended capture! so Shop::Payment#capture! runs unwrapped.
# Safe to run twice, or when checkout.rb never ran.
if defined?(LadderProbes::CheckoutCapture) &&
   LadderProbes::CheckoutCapture.instance_methods(false).include?(:capture!)
  LadderProbes::CheckoutCapture.send(:remove_method, :capture!)
end
true
