// distvae gradvar: the variance of the encoder's gradient estimated by the reparameterization
// trick against the score-function (REINFORCE) estimator, same batch, same sample count.
#pragma once

#include <string>

namespace distvae {

int gradient_variance(const std::string& checkpoint, const std::string& data, int batch, int draws);

}  // namespace distvae
