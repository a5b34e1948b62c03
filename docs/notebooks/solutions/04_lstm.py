"""Solutions to the exercises of 04_lstm.ipynb, one `# %%` section each."""


# %% lstm_step
def lstm_step(x_t, h_prev, c_prev, cell):
    gates = x_t @ cell.weight_ih.T + cell.bias_ih + h_prev @ cell.weight_hh.T + cell.bias_hh
    i_pre, f_pre, g_pre, o_pre = gates.chunk(4, axis=1)  # gate order i, f, g, o
    f_t = f_pre.sigmoid()  # forget gate
    i_t = i_pre.sigmoid()  # input gate
    c_tilde = g_pre.tanh()  # candidate C̃_t
    c_t = f_t * c_prev + i_t * c_tilde  # C_t = f_t ⊙ C_{t−1} + i_t ⊙ C̃_t
    o_t = o_pre.sigmoid()  # output gate
    h_t = o_t * c_t.tanh()  # h_t = o_t ⊙ tanh(C_t)
    return h_t, c_t


# %% forget_bias
def open_forget_gate(cell, bias):
    H = cell.hidden_size
    cell.bias_ih.data[H : 2 * H] = bias  # rows H…2H of the biases belong to f_t
    cell.bias_hh.data[H : 2 * H] = 0.0
