//! Reading a tensor back to the host without blocking (WebGPU reads must be
//! awaited in a browser), for the self-check and the pipeline.

use burn::prelude::*;

/// The values of `tensor` as `f32`, row-major; the backend's message on failure.
pub async fn read_floats<B: Backend, const D: usize>(
    tensor: Tensor<B, D>,
) -> Result<Vec<f32>, String> {
    let data = tensor
        .into_data_async()
        .await
        .map_err(|e| format!("{e:?}"))?;
    data.convert::<f32>()
        .into_vec::<f32>()
        .map_err(|e| format!("{e:?}"))
}
